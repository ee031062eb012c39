"""Where each pixel's colour comes from: :mod:`.flow` (optical flow: OpenCV DIS, torchvision RAFT;
warping and forward-backward checks), :mod:`.detail` (the references' fine colour carried onto the
full-size output by flow) and :mod:`.semantic` (training-free matching on frozen EfficientNet-Lite0
features). The learned models' own attention lives with them in :mod:`vidcolor.models`."""
