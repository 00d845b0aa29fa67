"""shapekit: turn photos into shape (landmarks, masks, meshes)."""

__version__ = "0.1.0"
