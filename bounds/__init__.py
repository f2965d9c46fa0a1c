"""llm-bounds: the mathematics of compression bounds, quantization and coding, data and evaluation, certificates."""
