"""What a CNN sees: convolution from scratch, hand-made kernels, feature maps, the X-or-X case study."""
from cnnlab.interpret.conv_numpy import (avg_pool2d, conv2d_direct, conv2d_im2col, max_pool2d,
                                       output_size, relu)
from cnnlab.interpret.convolve import convolve_image, explain_convolution, plot_feature_maps
from cnnlab.interpret.kernels import KERNELS, parse_kernel
from cnnlab.interpret.xo_case import train_xo_cnn, xo_case_study
from cnnlab.interpret.cams import METHODS, cam, cam_layer, last_conv_layer, overlay, plot_cam
from cnnlab.interpret.features import (LayerPatches, conv_layers, feature_maps, first_layer_filters,
                                     plot_filters, plot_top_patches, top_patches)
from cnnlab.interpret.features import plot_feature_maps as plot_layer_feature_maps
from cnnlab.interpret.report import explain_image
