"""Random but valid SpeaQ training batches (preprocessed images plus packed ``DetDataSample``s with scene graphs),
for benchmarks and tests that need a model's real workload without a dataset; mmdet's ``mmdet.testing`` plays
the same role for detectors.
"""
import torch


def random_batch(batch, height, width, objects, relations, num_classes, num_predicates, seed=0):
    """Preprocessed inputs and packed samples with random, valid scene graphs."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for index in range(batch):
        corner = torch.rand(objects, 2, generator=gen) * torch.tensor([width * 0.8, height * 0.8])
        size = torch.rand(objects, 2, generator=gen) * torch.tensor([width * 0.3, height * 0.3]) + 16
        boxes = torch.cat([corner, corner + size], dim=1)
        subjects = torch.randint(0, objects, (relations,), generator=gen)
        offsets = torch.randint(1, objects, (relations,), generator=gen)
        sample = DetDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width),
                                             batch_input_shape=(height, width), img_path=f'random{index}.jpg',
                                             scale_factor=(1.0, 1.0), sample_weight=1.0))
        sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.randint(0, num_classes, (objects,),
                                                                               generator=gen))
        predicates = torch.randint(0, num_predicates, (relations,), generator=gen)
        sample.gt_relations = InstanceData(pairs=torch.stack([subjects, (subjects + offsets) % objects], 1),
                                           labels=predicates)
        samples.append(sample)
    return torch.randn(batch, 3, height, width, generator=gen), samples
