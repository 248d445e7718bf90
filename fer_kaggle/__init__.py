"""fer-kaggle: a toolkit for Kaggle-style image classification, starting with FER2013."""

__version__ = "0.1.0"

CLASS_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
IMAGE_SIZE = 48
