// widget placeholder until the widget lands
