"""bpy-free parts of the add-on: rig maths and the backend runner (the contract itself is ``hsmr_contract``)."""
