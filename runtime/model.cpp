// placeholder until the executor lands
