"""The streaming loader: batches decoded and augmented in worker processes, an epoch's order and augmentation a
function of (seed, epoch, rank) only, a start inside an epoch equal to the tail of the whole epoch, disjoint shards,
broken files skipped and named or refused."""

import pytest
import torch
from imagefolders import write_image_folder

from resdyn.data.errors import DataError
from resdyn.data.folder import image_folder
from resdyn.data.images import EvalTransform, TrainTransform, decode, to_uint8
from resdyn.data.streaming import StreamingLoader
from resdyn.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

TRAIN = TrainTransform(size=16)
EVAL = EvalTransform(resize=20, crop=16)


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    return image_folder(write_image_folder(tmp_path_factory.mktemp("pets"), train_per_class=6), image_size=16)


def train_loader(pets, **options):
    return StreamingLoader(pets.train, pets.info, 4, transform=TRAIN, shuffle=True, seed=7, **options)


def epoch(loader, number, start=None):
    loader.set_epoch(number)
    if start is not None:
        loader.start_step(start)
    return list(loader)


def assert_same(a, b):
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_batches_are_normalised_images_and_their_labels(pets):
    loader = train_loader(pets)
    batches = epoch(loader, 1)
    assert len(loader) == len(batches) == 5  # 20 images in batches of 4
    assert loader.image_size == (16, 16) and len(loader.labels) == 20
    x, y = batches[0]
    assert x.shape == (4, 3, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == sorted(pets.train.labels.tolist())
    mean = torch.tensor(pets.info.mean).view(1, 3, 1, 1)
    std = torch.tensor(pets.info.std).view(1, 3, 1, 1)
    pixels = x * std + mean
    assert pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6


def test_evaluation_is_deterministic_and_in_file_order(pets):
    loader = StreamingLoader(pets.test, pets.info, 4, transform=EVAL)
    first, again = epoch(loader, 1), epoch(loader, 2)
    assert_same(first, again)
    x, y = first[0]
    expected = to_uint8(EVAL(decode(pets.test.path(0)))).float() / 255
    mean, std = torch.tensor(pets.info.mean).view(3, 1, 1), torch.tensor(pets.info.std).view(3, 1, 1)
    torch.testing.assert_close(x[0], (expected - mean) / std)
    assert y.tolist() == pets.test.labels[:4].tolist()


def test_an_epoch_depends_on_seed_and_epoch_not_on_the_workers(pets):
    alone = epoch(train_loader(pets), 3)
    with_workers = train_loader(pets, num_workers=2)
    assert_same(alone, epoch(with_workers, 3))
    assert_same(alone, epoch(with_workers, 3))  # persistent workers, the epoch again
    other = epoch(with_workers, 4)
    assert not torch.equal(torch.cat([y for _, y in alone]), torch.cat([y for _, y in other]))
    assert_same(alone, epoch(train_loader(pets), 3))


def test_a_start_inside_an_epoch_gives_the_tail_of_the_whole_epoch(pets):
    whole = epoch(train_loader(pets), 2)
    for workers in (0, 2):
        loader = train_loader(pets, num_workers=workers)
        assert_same(epoch(loader, 2, start=3), whole[3:])
        assert_same(epoch(loader, 2), whole)  # the start applies once


def test_ranks_read_disjoint_shards_that_make_up_the_global_batches(pets):
    whole = epoch(train_loader(pets), 5)
    ranks = [train_loader(pets, rank=rank, world_size=2) for rank in (0, 1)]
    for loader in ranks:
        loader.set_epoch(5)
    shards = [loader.indices() for loader in ranks]
    seen = torch.cat([torch.cat(s) for s in shards])
    assert sorted(seen.tolist()) == list(range(20))  # disjoint, covering the epoch
    per_rank = [epoch(loader, 5) for loader in ranks]
    for step, (x, y) in enumerate(whole):
        assert torch.equal(torch.cat([per_rank[0][step][0], per_rank[1][step][0]]), x)
        assert torch.equal(torch.cat([per_rank[0][step][1], per_rank[1][step][1]]), y)


def test_a_last_training_batch_too_small_for_every_rank_is_dropped(pets):
    loader = StreamingLoader(pets.train, pets.info, 6, transform=TRAIN, shuffle=True, rank=1, world_size=3)
    assert len(loader) == 3  # 20 images: 6, 6, 6 and a last 2, which 3 ranks cannot share
    assert [len(i) for i in loader.indices()] == [2, 2, 2]


def test_set_size_changes_the_training_crop(pets):
    loader = train_loader(pets)
    loader.set_size(8)
    assert epoch(loader, 1)[0][0].shape == (4, 3, 8, 8)
    loader.set_size(None)
    assert epoch(loader, 1)[0][0].shape == (4, 3, 16, 16)


@pytest.fixture
def broken(tmp_path):
    root = write_image_folder(tmp_path / "pets", train_per_class=2)
    (root / "train" / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return image_folder(root, image_size=16)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_broken_file_is_refused_by_name(broken, workers):
    loader = StreamingLoader(broken.train, broken.info, 3, transform=TRAIN, num_workers=workers)
    with pytest.raises(DataError, match=r"cannot decode .*dog/broken.jpg"):
        epoch(loader, 1)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_broken_file_is_skipped_and_named(broken, workers):
    loader = StreamingLoader(broken.train, broken.info, 3, transform=TRAIN, num_workers=workers, on_error="skip")
    with pytest.warns(UserWarning, match=r"skipped .*dog/broken.jpg"):
        batches = epoch(loader, 1)
    assert sum(len(y) for _, y in batches) == len(broken.train) - 1
    assert [p.name for p in loader.skipped] == ["broken.jpg"]


def test_options_are_checked(pets):
    with pytest.raises(ConfigError, match="on_error"):
        StreamingLoader(pets.train, pets.info, 4, transform=TRAIN, on_error="ignore")
    with pytest.raises(ConfigError, match="rank"):
        StreamingLoader(pets.train, pets.info, 4, transform=TRAIN, rank=2, world_size=2)
    with pytest.raises(ConfigError, match="batch"):
        StreamingLoader(pets.train, pets.info, 0, transform=TRAIN)
    with pytest.raises(ConfigError, match="step"):
        train_loader(pets).start_step(6)
