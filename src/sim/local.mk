# src/sim: (see the module's issue)
