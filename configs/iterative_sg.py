# The IterativeSG baseline (SpeaQ off) on VG150: one-to-one matching on the cost summed over all decoder
# layers, no predicate groups, 300 relation queries (one per subject/object slot). The reference's
# "baseline" (speaq.yaml with its defaults).
_base_ = ['./visual_genome.py']

model = dict(
    num_relation_queries=300,  # NUM_RELATION_QUERIES 300 x MULTIPLY_QUERY 1
    train_cfg=dict(
        assigner=dict(
            one_to_many='static',  # with k=1: one-to-one Hungarian matching
            k=1,
            predicate_score_weight=None,
            use_group_mask=False,
            match_independent=False)))
