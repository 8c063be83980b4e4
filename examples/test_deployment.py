"""Pin a deployment in your CI with neurodeploy's pytest plugin (installed with neurodeploy).

    pytest examples/test_deployment.py            # first run records tests/golden/*.npz
    pytest examples/test_deployment.py            # later runs compare bit for bit
    pytest examples/test_deployment.py --neurodeploy-update-golden   # accept a change

The last test gates the artifact you deploy, as a CI job would: compile once, keep the .ndp, and
check that very file against its float model, as on the command line

    neurodeploy compile model.nir --target loihi2 --calibrate calib.npz -o build/model.ndp
    neurodeploy verify build/model.ndp --input test.npz --min-class-agreement 0.95   # exit 1 on a miss

Replace the model path and inputs with your own.
"""
import numpy as np
import pytest

from neurodeploy.cli import main as cli
from neurodeploy.models import data, path


def test_digits_mlp_on_loihi2_is_unchanged(neurodeploy_compile, neurodeploy_emulate, neurodeploy_golden):
    compiled = neurodeploy_compile(path("digits_mlp"), "loihi2")
    assert not compiled.health.severe, compiled.health.lines()
    assert compiled.mapping.fits
    inputs, labels = data.test_set("digits_mlp")
    traces = neurodeploy_emulate(compiled, inputs[:16])
    neurodeploy_golden.check("digits_mlp_loihi2", traces)


def test_deployed_accuracy_stays_close_to_float(neurodeploy_compile, neurodeploy_emulate):
    from neurodeploy import models
    from neurodeploy.api import simulate

    inputs, labels = data.test_set("digits_mlp")
    float_acc = models.accuracy("digits_mlp", simulate(path("digits_mlp"), inputs, warn=False), labels)
    deployed = neurodeploy_emulate(neurodeploy_compile(path("digits_mlp"), "spinnaker"), inputs)
    assert models.accuracy("digits_mlp", deployed, labels) >= float_acc - 0.01
    assert np.isfinite(deployed["v.li1"]).all()


@pytest.fixture(scope="module")
def deployed_artifact(tmp_path_factory):
    """The build step: one `neurodeploy compile` (calibrated), whose .ndp is what ships."""
    build = tmp_path_factory.mktemp("build")
    inputs, _ = data.test_set("digits_mlp")
    np.savez(build / "calib.npz", input=inputs[:64])
    artifact = build / "digits_mlp.loihi2.ndp"
    assert cli.main(["compile", str(path("digits_mlp")), "--target", "loihi2", "--calibrate",
                     str(build / "calib.npz"), "-o", str(artifact)]) == 0
    return artifact


def test_deployed_artifact_passes_its_gate(deployed_artifact, neurodeploy_verify):
    inputs, _ = data.test_set("digits_mlp")
    report = neurodeploy_verify(deployed_artifact, inputs[:64], min_class_agreement=0.95, min_spike_agreement=0.98)
    assert report["float_model"]["sha256_matches_provenance"]
