"""Pin a deployment in your CI with neurodeploy's pytest plugin (installed with neurodeploy).

    pytest examples/test_deployment.py            # first run records tests/golden/*.npz
    pytest examples/test_deployment.py            # later runs compare bit for bit
    pytest examples/test_deployment.py --neurodeploy-update-golden   # accept a change

Replace the model path and inputs with your own.
"""
import numpy as np

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
