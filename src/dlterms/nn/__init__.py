"""Layers written from their equations, with PyTorch's names and argument conventions.

Every layer is a `torch.nn.Module` built from tensor primitives (no call to the torch layer it
re-implements), so it trains with torch's autograd and is checked against torch in tests.
Dimension order is batch first everywhere: (B, C, L) for 1-D signals, (B, C, H, W) for images,
(B, T, C) for sequences.
"""

from dlterms.nn.activations import *  # noqa: F403
from dlterms.nn.attention import *  # noqa: F403
from dlterms.nn.capsules import *  # noqa: F403
from dlterms.nn.conv import *  # noqa: F403
from dlterms.nn.dropout import *  # noqa: F403
from dlterms.nn.embedding import *  # noqa: F403
from dlterms.nn.graph import *  # noqa: F403
from dlterms.nn.init import *  # noqa: F403
from dlterms.nn.linear import *  # noqa: F403
from dlterms.nn.normalization import *  # noqa: F403
from dlterms.nn.pooling import *  # noqa: F403
from dlterms.nn.positional import *  # noqa: F403
from dlterms.nn.recurrent import *  # noqa: F403
from dlterms.nn.residual import *  # noqa: F403
from dlterms.nn.spatial_transformer import *  # noqa: F403
from dlterms.nn.transformer import *  # noqa: F403
