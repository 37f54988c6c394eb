"""Readers of the data users have on disk: IDX, CIFAR pickles, class folders (classification);
Pascal VOC in any arrangement, COCO, YOLO / Ultralytics YAML, box CSV (detection); mask folders,
CamVid/SegNet, VOC segmentation (segmentation); captions files, Flickr (captioning).

Each task's reader registers itself with ``cnnlab.data.registry`` (a path loader) and with
``cnnlab.data.layout`` (a layout sniffer) when ``cnnlab.data`` imports it.
"""
