"""pevm's state layer: the state commitment kept between blocks
(:mod:`~pevm.state.commitment`) and its benchmark (:mod:`~pevm.state.bench`)."""
