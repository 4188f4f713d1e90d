"""The network: VGG19 and its weight formats, the fused kernels, the normalised copy, devices and the cache."""
