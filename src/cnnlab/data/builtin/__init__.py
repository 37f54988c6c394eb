"""cnnlab's own synthetic datasets, made in memory: digits (scikit-learn's 8x8 digits), xo and
shapes, with shapes' detection, segmentation and captioning variants; and the README's sample
images written from them (``cnnlab samples``).

Each set registers itself with ``cnnlab.data.registry`` when ``cnnlab.data`` imports it.
"""
