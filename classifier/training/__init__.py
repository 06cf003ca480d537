"""VGG-Face FER training on FER-2013 (PyTorch, ``train`` extra).

See ``python -m moodstream.classifier.training -h``."""
