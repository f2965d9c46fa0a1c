"""SubLoRA: LoRA adapters re-parameterized through a fixed random projection, theta = theta0 + P z."""
