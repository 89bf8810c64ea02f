"""A model server that classifies images with torchvision's classifiers: DenseNet-121 by default, or the
user's own (any torchvision architecture, fine-tuned weights, several models at once)."""

__version__ = "0.1.0"
