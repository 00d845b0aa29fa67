"""Template meshes, all in one place: the mesh task's ico-sphere / ellipsoid (``sphere``) and the parametric
upper-body garment of ``shapekit garment`` (``garment``)."""

from .sphere import (Template, adjacent_face_pairs, face_uvs, icosphere, island_face_uvs, spherical_face_uvs,
                     subdivide, template_from_mesh, vertex_neighbours)

__all__ = ["Template", "adjacent_face_pairs", "face_uvs", "icosphere", "island_face_uvs", "spherical_face_uvs",
           "subdivide", "template_from_mesh", "vertex_neighbours"]
