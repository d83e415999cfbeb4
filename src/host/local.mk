# src/host: (see the module's issue)
