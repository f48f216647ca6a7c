"""A VG h5 from elsewhere cannot make the reader open other files or allocate memory the file does not hold."""
import os.path as osp

import h5py
import numpy as np
import pytest

from speaq_mm.datasets.vg_format import VGFormatError
from speaq_mm.datasets.vg_format.reading import load_vg_graphs, read_vg_h5
from tests.datasets_fixtures import edit_h5, write_hand_dataset

SECRET = b'bytes of a file outside the dataset folder'


@pytest.fixture
def files(tmp_path):
    return write_hand_dataset(str(tmp_path / 'dataset'))


@pytest.fixture
def outside(tmp_path):
    """A file outside the dataset folder that an h5 must never read."""
    path = tmp_path / 'outside' / 'secret.bin'
    path.parent.mkdir()
    path.write_bytes(SECRET * 64)
    return path


def replace_labels(path, make):
    """Delete ``labels`` and let ``make(h5)`` create it again in some other form."""
    with h5py.File(path, 'a') as h5:
        rows = h5['labels'].shape[0]
        del h5['labels']
        make(h5, rows)


def refused(files, pattern):
    with pytest.raises(VGFormatError, match=pattern) as error:
        read_vg_h5(files['ann_file'])
    assert SECRET.decode()[:10] not in str(error.value)
    return error


def test_external_storage_is_refused(files, outside):
    replace_labels(files['ann_file'], lambda h5, rows: h5.create_dataset(
        'labels', shape=(rows, 1), dtype='u1', external=[(str(outside), 0, rows)]))
    refused(files, r'VG-SGG-with-attri\.h5: h5 key "labels" is stored in external files')


def test_virtual_datasets_are_refused(files, tmp_path):
    source = tmp_path / 'outside.h5'
    with h5py.File(source, 'w') as h5:
        h5['labels'] = np.ones((11, 1), np.int64)

    def virtual(h5, rows):
        layout = h5py.VirtualLayout(shape=(rows, 1), dtype=np.int64)
        layout[:] = h5py.VirtualSource(str(source), 'labels', shape=(rows, 1))
        h5.create_virtual_dataset('labels', layout)

    replace_labels(files['ann_file'], virtual)
    refused(files, r'h5 key "labels" is a virtual dataset')


@pytest.mark.parametrize('link', ['soft', 'external'])
def test_links_are_refused(files, tmp_path, link):
    other = tmp_path / 'other.h5'
    with h5py.File(other, 'w') as h5:
        h5['labels'] = np.ones((11, 1), np.int64)

    def make(h5, rows):
        if link == 'soft':
            h5['moved_labels'] = np.ones((rows, 1), np.int64)
            h5['labels'] = h5py.SoftLink('/moved_labels')
        else:
            h5['labels'] = h5py.ExternalLink(str(other), '/labels')

    replace_labels(files['ann_file'], make)
    refused(files, r'h5 key "labels" is a (SoftLink|ExternalLink)')


def test_a_tiny_h5_cannot_request_a_huge_allocation(files):
    """A dataset declared (2**31, 4) int32 (32 GiB) with nothing written is a few kB on disk."""
    with h5py.File(files['ann_file'], 'a') as h5:
        del h5['boxes_1024']
        h5.create_dataset('boxes_1024', shape=(2 ** 31, 4), dtype=np.int32, chunks=(1024, 4))
    assert osp.getsize(files['ann_file']) < 64 * 1024
    refused(files, r'h5 key "boxes_1024" declares shape \(2147483648, 4\).*stores 0 bytes')


def test_compressed_datasets_of_a_real_size_still_load(files):
    with h5py.File(files['ann_file'], 'a') as h5:
        labels = h5['labels'][()]
        del h5['labels']
        h5.create_dataset('labels', data=labels, compression='gzip', chunks=True)
    arrays, _ = read_vg_h5(files['ann_file'])
    assert np.array_equal(arrays['labels'], labels.reshape(-1))


def test_overlapping_image_ranges_are_refused(files):
    """Every image claiming every box would gather images x boxes rows."""
    with h5py.File(files['ann_file'], 'r') as h5:
        images, boxes = len(h5['split']), len(h5['labels'])
    edit_h5(files['ann_file'], img_to_first_box=np.zeros(images, np.int32),
            img_to_last_box=np.full(images, boxes - 1, np.int32))
    with pytest.raises(VGFormatError, match=rf'cover {images * boxes} boxes in total, but the h5 holds {boxes}'):
        load_vg_graphs(files['ann_file'], files['image_data_file'], num_classes=3, num_predicates=3)
