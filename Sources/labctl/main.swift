print("labctl")
