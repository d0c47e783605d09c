"""Model files (one ``.safetensors`` each, never unpickled) and the user's model registry."""
