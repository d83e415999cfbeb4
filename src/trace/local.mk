# src/trace: (see the module's issue)
