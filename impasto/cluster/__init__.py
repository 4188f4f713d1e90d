"""One image over a cluster: the tiled step's passes on Ray workers (:mod:`impasto.cluster.tiles`)."""

from .tiles import ClusterError, RayTiles

__all__ = ["ClusterError", "RayTiles"]
