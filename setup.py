"""Packaging for speaq_mm.

torch and the OpenMMLab stack are not in ``install_requires`` on purpose: pip would pull a CUDA torch on a
CPU machine and cannot build mmcv with its ops. ``tools/install.sh`` (``make install``) installs them.
"""
import os.path as osp

from setuptools import find_packages, setup


def read_version():
    namespace = {}
    with open(osp.join(osp.dirname(__file__), 'speaq_mm', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def read_requirements(name):
    with open(osp.join(osp.dirname(__file__), 'requirements', name)) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith('#')]


setup(
    name='speaq_mm',
    version=read_version(),
    description='SpeaQ scene graph generation as an MMDetection 3.x plugin',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    # The package lies at the top of the checkout. Saying so makes ``pip install -e .`` put the checkout itself
    # on sys.path (a static .pth file), so that configs can import ``projects.*`` from any folder, as with
    # mmdet's projects; the tools then need no sys.path edits.
    package_dir={'': '.'},
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'projects', 'docs')),
    python_requires='>=3.9',
    install_requires=read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt')},
    license='Apache-2.0',
    zip_safe=False,
)
