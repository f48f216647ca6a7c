# Visual Genome VG150 (150 classes, 50 predicates) in the standard h5 layout (docs/dataset_format.md).
# train / val / test = 57,723 / 5,000 / 26,446 images: val = the first `num_val_images` filtered train images.
dataset_type = 'VGH5Dataset'
data_root = 'data/vg/'  # holds the three files below and the image folder
num_val_images = 5000  # shared by train and val so that the two stay disjoint
backend_args = None  # mmengine file backend for the images (None: local disk)

# The reference's DETR recipe: flip, then either a multi-scale resize, or resize + random crop + multi-scale
# resize. Boxes emptied by the crop are removed with their relations; one predicate per pair. Every resize uses
# PIL's bilinear filter (backend='pillow'), as the reference's mapper does: it antialiases when it shrinks,
# cv2's does not, and a converted reference checkpoint sees the pixels it was trained on only this way.
train_scales = [(1333, short) for short in range(480, 801, 32)]  # (long side cap, short side) choices
train_pipeline = [
    # on_unreadable='skip' replaces an unreadable image by another of the same dataset (counted in the log).
    dict(type='SGGLoadImageFromFile', on_unreadable='error', backend_args=backend_args),
    dict(type='SGGLoadAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=train_scales, keep_ratio=True, backend='pillow')],
            [
                # 100000: no cap on the long side, as the reference's ResizeShortestEdge([400, 500, 600]).
                dict(type='RandomChoiceResize', scales=[(100000, 400), (100000, 500), (100000, 600)],
                     keep_ratio=True, backend='pillow'),
                dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600),
                     allow_negative_crop=True),
                dict(type='RandomChoiceResize', scales=train_scales, keep_ratio=True, backend='pillow'),
            ],
        ]),
    dict(type='SGGFilterEmptyInstances', min_size=1e-5),
    dict(type='SGGFilterDuplicateRelations'),
    dict(type='SGGPackInputs'),
]
# Annotations are loaded after the resize, so the ground truth stays in original-image pixels.
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True, backend='pillow'),
    dict(type='SGGLoadAnnotations'),
    dict(type='SGGPackInputs'),
]

# Dataset settings shared by the three dataloaders.
vg150_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file='VG-SGG-with-attri.h5',
    image_data_file='image_data.json',
    dicts_file='VG-SGG-dicts-with-attri.json',
    data_prefix=dict(img='VG_100K/'),
    num_val_images=num_val_images,
    filter_empty_rels=True,
    filter_non_overlap=False,  # the SpeaQ recipe keeps non-overlapping pairs (the option filters train only)
    box_scale=1024,
    source='real',  # copied into every sample's metainfo (mix configs key their settings by it)
    backend_args=backend_args)

train_dataloader = dict(
    batch_size=5,  # per GPU; the recipe's global batch is 20 = 4 GPUs x 5
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    # mmdet's AspectRatioBatchSampler, resumable at any batch and with seeded augmentation (exact resume).
    batch_sampler=dict(type='SGGAspectRatioBatchSampler'),
    dataset=dict(split='train', pipeline=train_pipeline, **vg150_dataset))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(split='val', test_mode=True, pipeline=test_pipeline, **vg150_dataset))
# The test split, read exactly like val.
test_dataloader = dict(val_dataloader, dataset=dict(val_dataloader['dataset'], split='test'))

val_evaluator = dict(type='SGGMetric')
test_evaluator = val_evaluator
