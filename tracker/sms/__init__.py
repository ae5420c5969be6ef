"""SMS gateways behind one port (port.py): the simulator and Twilio."""
