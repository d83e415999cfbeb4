# src/quant: (see the module's issue)
