"""Runtime helpers below the tasks: the device, the precision policy, distributed reductions.

Tasks use these for their metrics (summed over processes) without reaching up into the engine.
"""
from cnnlab.runtime.device import autocast, pick_device, use_bf16
from cnnlab.runtime.distributed import Dist, all_reduce_sum

__all__ = ["Dist", "all_reduce_sum", "autocast", "pick_device", "use_bf16"]
