"""Datasets, crops and targets. ``transforms``, ``coco`` and ``synthetic`` are numpy/OpenCV only;
``pipeline`` builds the tf.data input for training."""
