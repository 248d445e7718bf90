"""fer-kaggle: a toolkit for Kaggle-style image classification, starting with FER2013.

The competition's shape (image size, channels, classes, submission format, metric) is never a
constant here: `fer-kaggle data` settles it as a spec (`fer_kaggle.spec`), and every stage
takes it from there."""

__version__ = "0.3.0"
