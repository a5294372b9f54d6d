"""Model families as functions that produce :class:`~netscale.specs.NetSpec` objects.

One module per family (as timm does), each registering its named models with
:mod:`netscale.specs.registry`.
"""

from netscale.specs.families.cifar import cifar_resnet
from netscale.specs.families.effnet import effnet
from netscale.specs.families.regnet import generate_regnet, regnet
from netscale.specs.families.resnet import resnet, resnext

__all__ = ["cifar_resnet", "effnet", "generate_regnet", "regnet", "resnet", "resnext"]
