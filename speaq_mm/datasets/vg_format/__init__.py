"""The Visual Genome (VG150) file format (docs/dataset_format.md): reading and writing the h5, image_data and
dicts files as whole-file numpy arrays."""
from .reading import (
                      BOX_DECODES,
                      PLAIN_IMAGE_ID,
                      RELATION_SCORES_KEY,
                      SPLITS,
                      STATISTICS_KEYS,
                      VG_CORRUPTED_IMAGE_IDS,
                      VG_FILE_NAMES,
                      VGFormatError,
                      VGGraphs,
                      align_image_data,
                      check_image_ids,
                      concat_ranges,
                      load_vg_graphs,
                      read_image_data,
                      read_vg_dicts,
                      read_vg_h5,
)
from .writing import encode_boxes, write_image_data, write_vg_dataset, write_vg_dicts, write_vg_h5

__all__ = ['BOX_DECODES', 'PLAIN_IMAGE_ID', 'RELATION_SCORES_KEY', 'SPLITS', 'STATISTICS_KEYS',
           'VG_CORRUPTED_IMAGE_IDS', 'VG_FILE_NAMES', 'VGFormatError', 'VGGraphs', 'align_image_data',
           'check_image_ids', 'concat_ranges', 'load_vg_graphs', 'read_image_data', 'read_vg_dicts', 'read_vg_h5',
           'encode_boxes', 'write_image_data', 'write_vg_dataset', 'write_vg_dicts', 'write_vg_h5']
