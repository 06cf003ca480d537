"""VGG-Face FER training on FER-2013 (PyTorch, ``train`` extra); see ``python -m classifier.training -h``."""
