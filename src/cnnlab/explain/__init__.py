"""What a CNN sees: convolution from scratch, hand-made kernels, feature maps, the X-or-X case study."""
from cnnlab.explain.conv_numpy import (avg_pool2d, conv2d_direct, conv2d_im2col, max_pool2d,
                                       output_size, relu)
from cnnlab.explain.convolve import convolve_image, explain_convolution, plot_feature_maps
from cnnlab.explain.kernels import KERNELS, parse_kernel
from cnnlab.explain.xo_case import train_xo_cnn, xo_case_study
