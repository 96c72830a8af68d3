"""The vision-language runners: text encoder, decoder, generation, losses and the architectures
registered in VL_ARCHITECTURES (registry.py), trained through the same run framework as EndoARSS."""
