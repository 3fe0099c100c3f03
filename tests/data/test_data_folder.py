"""Image-folder datasets (train/<class>/*, val/<class>/*) and the ILSVRC-2012 layout: classes sorted and recorded,
labels, structure errors that name what is missing."""

import shutil

import numpy as np
import pytest
import torch
from imagefolders import CLASSES, write_image_folder, write_jpeg

from resdyn.data.errors import DataError, DatasetNotFoundError
from resdyn.data.folder import FOLDER_DATASETS, image_folder, imagenet, load_folder_dataset


def test_an_image_folder_loads_with_sorted_classes_and_their_labels(tmp_path):
    dataset = image_folder(write_image_folder(tmp_path / "pets"))
    assert dataset.info.classes == CLASSES and dataset.info.num_classes == 3 and dataset.info.in_channels == 3
    assert len(dataset.train) == 3 * 5 + 2 and len(dataset.test) == 3 * 2
    for split in (dataset.train, dataset.test):
        for i in range(len(split)):
            path = split.path(i)
            assert path.parent.name == CLASSES[int(split.labels[i])]
    assert dataset.train.labels.dtype == torch.int64
    # Files in a fixed order (class, then name), whatever order the file system lists them in.
    names = [dataset.train.path(i).name for i in range(len(dataset.train))]
    assert names[:5] == [f"bird_{i:03d}.jpg" for i in range(5)]
    assert {"grey.jpg", "cmyk.JPEG"} <= set(names)


def test_files_that_are_not_images_and_hidden_entries_are_left_out(tmp_path):
    root = write_image_folder(tmp_path / "pets")
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    (root / "train" / "cat" / ".hidden.jpg").write_bytes(b"")
    (root / "train" / ".cache").mkdir()
    dataset = image_folder(root)
    assert dataset.info.classes == CLASSES and len(dataset.train) == 17


@pytest.mark.parametrize("missing", ["train", "val"])
def test_a_missing_split_folder_is_an_error_naming_it(tmp_path, missing):
    root = write_image_folder(tmp_path / "pets")
    shutil.rmtree(root / missing)
    with pytest.raises(DataError, match=rf"{root / missing}.*train/<class>/<image>"):
        image_folder(root)


def test_a_missing_root_is_not_found(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path / "nowhere")):
        image_folder(tmp_path / "nowhere")


def test_an_empty_class_and_a_val_class_unknown_to_train_are_named(tmp_path):
    root = write_image_folder(tmp_path / "pets")
    (root / "train" / "fish").mkdir()
    with pytest.raises(DataError, match=r"no images in .*train/fish"):
        image_folder(root)
    (root / "train" / "fish").rmdir()
    write_jpeg(root / "val" / "owl" / "owl.jpg", (20, 20), (1, 2, 3))
    with pytest.raises(DataError, match=r"val/owl.* not among the training classes"):
        image_folder(root)


def test_images_directly_in_val_need_class_folders(tmp_path):
    root = write_image_folder(tmp_path / "pets")
    write_jpeg(root / "val" / "loose.jpg", (20, 20), (1, 2, 3))
    with pytest.raises(DataError, match=r"loose.jpg.*class folders"):
        image_folder(root)


def test_imagenet_with_class_folder_val_is_an_image_folder(tmp_path):
    root = write_image_folder(tmp_path / "ilsvrc")
    dataset = imagenet(root)
    assert dataset.info.name == "imagenet" and dataset.info.classes == CLASSES
    assert dataset.info.mean == (0.485, 0.456, 0.406)


def write_devkit(root, wnids_by_id, truth):
    """ILSVRC2012_devkit_t12/data: meta.mat (synsets: ILSVRC2012_ID, WNID, num_children; one inner node) and
    the validation ground truth, one ILSVRC2012_ID per validation image in file-name order."""
    sio = pytest.importorskip("scipy.io")
    data = root / "ILSVRC2012_devkit_t12" / "data"
    data.mkdir(parents=True)
    rows = [(ilsvrc_id, wnid, 0) for ilsvrc_id, wnid in wnids_by_id.items()] + [(99, "n00000000", 3)]
    synsets = np.array(rows, dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("num_children", "O")])
    sio.savemat(data / "meta.mat", {"synsets": synsets})
    (data / "ILSVRC2012_validation_ground_truth.txt").write_text("".join(f"{t}\n" for t in truth))


def test_imagenet_flat_val_takes_its_labels_from_the_devkit(tmp_path):
    root = tmp_path / "ilsvrc"
    # The devkit numbers the classes in its own order; the labels follow the sorted class folders.
    wnids = {1: "n03", 2: "n01", 3: "n02"}
    for wnid in wnids.values():
        write_jpeg(root / "train" / wnid / f"{wnid}_1.JPEG", (30, 20), (5, 5, 5))
    truth = [1, 3, 2, 1]
    for i in range(len(truth)):
        write_jpeg(root / "val" / f"ILSVRC2012_val_{i + 1:08d}.JPEG", (25, 31), (9, 9, 9))
    write_devkit(root, wnids, truth)
    dataset = imagenet(root)
    assert dataset.info.classes == ("n01", "n02", "n03")
    assert dataset.test.labels.tolist() == [2, 1, 0, 2]
    assert [dataset.test.path(i).name for i in range(4)] == [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 5)]


def test_imagenet_flat_val_without_the_devkit_names_the_files_it_needs(tmp_path):
    root = tmp_path / "ilsvrc"
    write_jpeg(root / "train" / "n01" / "a.JPEG", (30, 20), (5, 5, 5))
    write_jpeg(root / "val" / "ILSVRC2012_val_00000001.JPEG", (30, 20), (5, 5, 5))
    with pytest.raises(DataError, match=r"ILSVRC2012_validation_ground_truth.txt.*meta.mat"):
        imagenet(root)


def test_imagenet_ground_truth_of_another_length_is_refused(tmp_path):
    root = tmp_path / "ilsvrc"
    write_jpeg(root / "train" / "n01" / "a.JPEG", (30, 20), (5, 5, 5))
    write_jpeg(root / "val" / "ILSVRC2012_val_00000001.JPEG", (30, 20), (5, 5, 5))
    write_devkit(root, {1: "n01"}, [1, 1])
    with pytest.raises(DataError, match=r"2 labels for 1 validation images"):
        imagenet(root)


def test_the_folder_datasets_are_registered(tmp_path):
    assert FOLDER_DATASETS.names() == ["image-folder", "imagenet"]
    dataset = load_folder_dataset("image-folder", write_image_folder(tmp_path / "pets"))
    assert dataset.info.name == "image-folder"
