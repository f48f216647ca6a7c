"""The iterative relation decoder of IterativeSG/SpeaQ (docs/model.md, "Parts" and "Data flow").

Three stacks of mmdet ``DetrTransformerDecoderLayer`` (subject, object, relation) run in lock-step. Between
them sit two kinds of attention that mmdet does not have, written here with ``nn.MultiheadAttention``:

* conditioning: the object positional query attends to the subjects, the relation positional query to the
  (subject, object) pairs, each through a zero-initialised linear so that training starts from plain DETR
  decoders;
* graph message passing between layers: every stream attends to all triplet tokens (subject, object and
  relation features concatenated channel-wise), again through a zero-initialised residual branch.

mmcv's ``MultiheadAttention`` wrapper adds its own identity connection and cannot feed the wide
(2 x or 3 x embed_dims) keys through a linear first, so these use the torch module directly; their
parameter names are then exactly the reference's, which keeps checkpoint conversion a rename.
"""
import torch
from mmcv.cnn import build_norm_layer
from mmdet.models.layers import DetrTransformerDecoderLayer
from mmengine.model import BaseModule, ModuleList
from torch import nn
from torch.profiler import record_function

STREAMS = ('subject', 'object', 'relation')


def _attention(embed_dims, num_heads, dropout, key_dims=None):
    return nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout, kdim=key_dims, vdim=key_dims,
                                 batch_first=True)


class SpeaQIterativeRelationDecoder(BaseModule):
    """Subject -> object (conditioned on subjects) -> relation (conditioned on pairs), with graph updates.

    Args:
        num_layers (int): L, decoder layers per stream.
        layer_cfg (dict): config of each ``DetrTransformerDecoderLayer`` (post-norm, batch-first).
        num_heads (int): heads of the conditioning and graph attentions.
        dropout (float): dropout of those attentions and of their residual branches.
        post_norm_cfg (dict): the two output norms (``subject_norm`` for subjects and objects,
            ``relation_norm``), applied to the predictions of every layer, not to what flows on; default LN.
    """

    def __init__(self, num_layers, layer_cfg, num_heads=8, dropout=0.1, post_norm_cfg=None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if num_layers < 1:
            raise ValueError(f'num_layers must be >= 1, got {num_layers}')
        self.num_layers = num_layers
        for stream in STREAMS:
            setattr(self, f'{stream}_layers',
                    ModuleList([DetrTransformerDecoderLayer(**layer_cfg) for _ in range(num_layers)]))
        post_norm_cfg = post_norm_cfg or dict(type='LN')
        dims = self.subject_layers[0].embed_dims
        self.embed_dims = dims
        self.subject_norm = build_norm_layer(post_norm_cfg, dims)[1]
        self.relation_norm = build_norm_layer(post_norm_cfg, dims)[1]
        self.object_pos_attn = ModuleList([_attention(dims, num_heads, dropout) for _ in range(num_layers)])
        self.object_pos_linear = ModuleList([nn.Linear(dims, dims) for _ in range(num_layers)])
        self.relation_pos_attn = ModuleList(
            [_attention(dims, num_heads, dropout, 2 * dims) for _ in range(num_layers)])
        self.relation_pos_linear = ModuleList([nn.Linear(dims, dims) for _ in range(num_layers)])
        for stream in STREAMS:
            graph_attentions = [_attention(dims, num_heads, dropout, 3 * dims) for _ in range(num_layers - 1)]
            setattr(self, f'{stream}_graph_query_attn', ModuleList(graph_attentions))
            setattr(self, f'{stream}_graph_query_residual',
                    ModuleList([nn.Linear(dims, dims) for _ in range(num_layers - 1)]))
            setattr(self, f'{stream}_graph_query_norm',
                    ModuleList([nn.LayerNorm(dims) for _ in range(num_layers - 1)]))
        self.dropout = nn.Dropout(dropout)

    def zero_init_residual_branches(self):
        """Zero the conditioning linears and graph residuals (weights and biases), as the reference does
        after its Xavier init, so that these updates start as exact identities."""
        branches = list(self.object_pos_linear) + list(self.relation_pos_linear)
        for stream in STREAMS:
            branches += list(getattr(self, f'{stream}_graph_query_residual'))
        for linear in branches:
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)

    def forward(self, subject_pos, object_pos, relation_pos, memory, memory_pos, memory_mask):
        """Run the three streams.

        Args:
            subject_pos, object_pos (Tensor): (B, N_so, D) static positional queries.
            relation_pos (Tensor): (B, N_rel, D), N_rel a multiple of N_so.
            memory, memory_pos (Tensor): (B, HW, D) encoder output and its positional encoding.
            memory_mask (Tensor): (B, HW) bool, True at padding.

        Returns:
            tuple[Tensor]: normed subject, object (L, B, N_so, D) and relation (L, B, N_rel, D) features.
        """
        repeats = relation_pos.shape[1] // subject_pos.shape[1]
        subject_x = torch.zeros_like(subject_pos)
        object_x = torch.zeros_like(object_pos)
        relation_x = torch.zeros_like(relation_pos)
        outputs = ([], [], [])
        cross = dict(key=memory, value=memory, key_pos=memory_pos, key_padding_mask=memory_mask)
        # The record_function labels name the stages of tools/benchmarks/bench_model.py --profile.
        for layer in range(self.num_layers):
            with record_function('speaq.subject_decoder'):
                subject_f = self.subject_layers[layer](subject_x, query_pos=subject_pos, **cross)
            with record_function('speaq.object_decoder'):
                attended = self.object_pos_attn[layer](object_pos, subject_f + subject_pos, subject_f,
                                                       need_weights=False)[0]
                object_pos_l = object_pos + self.dropout(self.object_pos_linear[layer](attended))
                object_f = self.object_layers[layer](object_x, query_pos=object_pos_l, **cross)
            with record_function('speaq.relation_decoder'):
                keys = torch.cat([subject_f + subject_pos, object_f + object_pos_l], dim=-1)
                values = torch.cat([subject_f, object_f], dim=-1)
                attended = self.relation_pos_attn[layer](relation_pos, keys, values, need_weights=False)[0]
                relation_pos_l = relation_pos + self.dropout(self.relation_pos_linear[layer](attended))
                relation_f = self.relation_layers[layer](relation_x, query_pos=relation_pos_l, **cross)
            outputs[0].append(self.subject_norm(subject_f))
            outputs[1].append(self.subject_norm(object_f))
            outputs[2].append(self.relation_norm(relation_f))
            if layer == self.num_layers - 1:
                break
            with record_function('speaq.graph_message_passing'):
                subject_x, object_x, relation_x = self._message_passing(
                    layer, repeats, (subject_f, subject_pos), (object_f, object_pos_l), (relation_f, relation_pos_l))
        return tuple(torch.stack(stream) for stream in outputs)

    def _message_passing(self, layer, repeats, subject, obj, relation):
        """Every stream attends to all triplet tokens; each argument is a stream's (features, positions)."""
        (subject_f, subject_pos), (object_f, object_pos), (relation_f, relation_pos) = subject, obj, relation
        triplets = torch.cat([subject_f.repeat_interleave(repeats, dim=1),
                              object_f.repeat_interleave(repeats, dim=1), relation_f], dim=-1)
        triplet_pos = torch.cat([subject_pos.repeat_interleave(repeats, dim=1),
                                 object_pos.repeat_interleave(repeats, dim=1), relation_pos], dim=-1)
        triplet_keys = triplets + triplet_pos
        updated = []
        for stream, (features, pos) in zip(STREAMS, (subject, obj, relation)):
            attention = getattr(self, f'{stream}_graph_query_attn')[layer]
            attended = attention(features + pos, triplet_keys, triplets, need_weights=False)[0]
            residual = getattr(self, f'{stream}_graph_query_residual')[layer](attended)
            updated.append(features + getattr(self, f'{stream}_graph_query_norm')[layer](self.dropout(residual)))
        return updated
