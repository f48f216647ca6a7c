# The files of the synthetic scene graphs in the VG h5 layout ("Synthetic Genome"), in one place for the
# synthetic-only recipe (synthetic_genome.py) and the VG150 mix (vg_synthetic_mix.py). They use the VG150 dicts
# json, so the vocabulary matches vg150.py and the two can be mixed.
synthetic_genome_files = dict(
    data_root='data/synthetic_genome/',  # holds the files below and the image folder
    ann_file='augmented_from_refined.h5',
    image_data_file='image_data_new.json',
    dicts_file='VG-SGG-dicts-with-attri.json',  # a copy of VG150's
    data_prefix=dict(img='images/'),
    num_val_images=0,  # no carve-out from the train split: every split-0 image trains
    source='synthetic')  # copied into every sample's metainfo; the mix configs key their settings by it
