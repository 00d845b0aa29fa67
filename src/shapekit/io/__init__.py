"""Reading and writing the formats of the fields shapekit serves."""

from .coco import CocoKeypoints, read_coco_keypoints, write_coco_keypoints
from .csv_landmarks import read_csv, write_csv
from .images import image_size, list_images, read_image
from .landmark_dataset import LandmarkRecord, LandmarkSet, load_landmark_set, split_dataset, write_landmarks
from .tps import TpsSpecimen, read_tps, write_tps

__all__ = [
    "CocoKeypoints", "LandmarkRecord", "LandmarkSet", "TpsSpecimen", "image_size", "list_images",
    "load_landmark_set", "read_coco_keypoints", "read_csv", "read_image", "read_tps", "split_dataset",
    "write_coco_keypoints", "write_csv", "write_landmarks", "write_tps",
]
