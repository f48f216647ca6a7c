"""SpeaQIterativeRelationDecoder: shapes, zero-initialised updates, and the reference data flow."""
import torch
from mmdet.models.layers import DetrTransformerDecoderLayer

from speaq_mm.models.layers import SpeaQIterativeRelationDecoder


def layer_cfg(dims=16, heads=2):
    attention = dict(embed_dims=dims, num_heads=heads, dropout=0.0, batch_first=True)
    return dict(self_attn_cfg=dict(attention), cross_attn_cfg=dict(attention),
                ffn_cfg=dict(embed_dims=dims, feedforward_channels=32, num_fcs=2, ffn_drop=0.0))


def decoder_inputs(batch=2, entities=3, relations=6, tokens=10, dims=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.zeros(batch, tokens, dtype=torch.bool)
    mask[1, 7:] = True  # padding in the second image
    return dict(subject_pos=torch.randn(batch, entities, dims, generator=gen),
                object_pos=torch.randn(batch, entities, dims, generator=gen),
                relation_pos=torch.randn(batch, relations, dims, generator=gen),
                memory=torch.randn(batch, tokens, dims, generator=gen),
                memory_pos=torch.randn(batch, tokens, dims, generator=gen), memory_mask=mask)


def build(num_layers=3):
    decoder = SpeaQIterativeRelationDecoder(num_layers, layer_cfg(), num_heads=2, dropout=0.0)
    return decoder.eval()


def test_shapes_and_module_layout():
    decoder = build()
    subject, obj, relation = decoder(**decoder_inputs())
    assert subject.shape == obj.shape == (3, 2, 3, 16) and relation.shape == (3, 2, 6, 16)
    assert len(decoder.subject_graph_query_attn) == 2 and len(decoder.object_pos_attn) == 3
    names = dict(decoder.named_parameters())
    # Wide keys: separate q/k/v projections, as in the reference checkpoint.
    assert names['relation_pos_attn.0.k_proj_weight'].shape == (16, 32)
    assert names['object_graph_query_attn.1.v_proj_weight'].shape == (16, 48)
    assert names['object_pos_attn.0.in_proj_weight'].shape == (48, 16)


def plain_decoder(layers, norm, query_pos, inputs):
    """One stream without conditioning or graph updates: a stack of DETR layers with a shared output norm."""
    x = torch.zeros_like(query_pos)
    outputs = []
    for layer in layers:
        x = layer(x, key=inputs['memory'], value=inputs['memory'], query_pos=query_pos,
                  key_pos=inputs['memory_pos'], key_padding_mask=inputs['memory_mask'])
        outputs.append(norm(x))
    return torch.stack(outputs)


def test_zero_initialised_updates_reduce_to_three_plain_decoders():
    decoder = build()
    decoder.zero_init_residual_branches()
    inputs = decoder_inputs()
    subject, obj, relation = decoder(**inputs)
    assert torch.allclose(subject, plain_decoder(decoder.subject_layers, decoder.subject_norm,
                                                 inputs['subject_pos'], inputs), atol=1e-6)
    assert torch.allclose(obj, plain_decoder(decoder.object_layers, decoder.subject_norm, inputs['object_pos'],
                                             inputs), atol=1e-6)
    assert torch.allclose(relation, plain_decoder(decoder.relation_layers, decoder.relation_norm,
                                                  inputs['relation_pos'], inputs), atol=1e-6)


def test_objects_are_conditioned_on_subjects_and_relations_on_pairs():
    decoder = build(num_layers=1)
    inputs = decoder_inputs()
    base = decoder(**inputs)
    # With trained (non-zero) conditioning, changing the subject queries moves objects and relations.
    changed = dict(inputs, subject_pos=inputs['subject_pos'] + 1)
    moved = decoder(**changed)
    assert not torch.allclose(moved[1], base[1]) and not torch.allclose(moved[2], base[2])
    decoder.zero_init_residual_branches()
    base, moved = decoder(**inputs), decoder(**changed)
    assert torch.allclose(moved[1], base[1]) and torch.allclose(moved[2], base[2])


def test_graph_update_mixes_streams_between_layers():
    decoder = build(num_layers=2)
    decoder.zero_init_residual_branches()
    torch.manual_seed(0)
    torch.nn.init.normal_(decoder.relation_graph_query_residual[0].weight)
    inputs = decoder_inputs()
    base = decoder(**inputs)
    moved = decoder(**dict(inputs, subject_pos=inputs['subject_pos'] + 1))
    # Layer 0 relations do not see subjects (conditioning is zero); layer 1 relations do, through the graph.
    assert torch.allclose(moved[2][0], base[2][0])
    assert not torch.allclose(moved[2][1], base[2][1])


def test_one_layer_has_no_graph_attention():
    decoder = SpeaQIterativeRelationDecoder(1, layer_cfg(), num_heads=2)
    assert len(decoder.relation_graph_query_attn) == 0
    assert isinstance(decoder.subject_layers[0], DetrTransformerDecoderLayer)
