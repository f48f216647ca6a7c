# Toy scenes (tools/misc/make_toy_scenes.py, default "real" style): 2-4 coloured shapes per 128 px image,
# 6 classes, 6 geometric predicates. Generate them with
#   python tools/misc/make_toy_scenes.py data/toy_real
dataset_type = 'VGH5Dataset'
data_root = 'data/toy_real/'  # the generator writes the VG file names used below
num_val_images = 100  # val = the first 100 train images, train = the rest
image_size = 128  # images are resized to fit image_size x image_size
# The generator's predicate names (index = label); a horizontal flip swaps "left of" and "right of".
toy_predicates = ('above', 'below', 'left of', 'near', 'on', 'right of')

# The resizes keep mmcv's cv2 backend, unlike VG150's pillow: 12 us against 226 us per 128 -> 64 px image
# (docs/benchmarks.md, "Resize backends"), and no reference checkpoint was trained on these pixels.
train_pipeline = [
    # on_unreadable='skip' replaces an unreadable image by another of the same dataset (counted in the log).
    dict(type='SGGLoadImageFromFile', on_unreadable='error'),
    dict(type='SGGLoadAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='SGGSwapPredicatesOnFlip', predicates=toy_predicates, horizontal=[('left of', 'right of')]),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='SGGFilterEmptyInstances', min_size=1e-5),
    dict(type='SGGFilterDuplicateRelations'),
    dict(type='SGGPackInputs'),
]
# Annotations are loaded after the resize, so the ground truth stays in original-image pixels.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='SGGLoadAnnotations'),
    dict(type='SGGPackInputs'),
]
# Dataset settings shared by the three dataloaders.
toy_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file='VG-SGG-with-attri.h5',
    image_data_file='image_data.json',
    dicts_file='VG-SGG-dicts-with-attri.json',
    data_prefix=dict(img='VG_100K/'),
    num_val_images=num_val_images,
    filter_empty_rels=True,
    source='real')  # copied into every sample's metainfo (mix configs key their settings by it)

train_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    # Resumable at any batch, with seeded augmentation (exact resume); the toy images are all square.
    batch_sampler=dict(type='SGGAspectRatioBatchSampler'),
    dataset=dict(split='train', pipeline=train_pipeline, **toy_dataset))
val_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(split='val', test_mode=True, pipeline=test_pipeline, **toy_dataset))
# The test split, read exactly like val.
test_dataloader = dict(val_dataloader, dataset=dict(val_dataloader['dataset'], split='test'))

val_evaluator = dict(type='SGGMetric')
test_evaluator = val_evaluator
