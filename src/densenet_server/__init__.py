"""An HTTP server that classifies images with torchvision's DenseNet-121."""

__version__ = "0.1.0"
