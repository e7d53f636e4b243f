/** Three disjoint topic corpora and a mixed held-out set for the convergence tests (plain English, made up here). */
export const TOPICS: Record<string, string[]> = {
  gardening: [
    'Roses bloom in june. Prune the roses hard in march and feed them in april.',
    'Tomatoes need full sun, deep water and a stake. Pinch the side shoots of the tomatoes.',
    'Basil hates cold nights. Mint spreads fast, so plant the mint in a pot.',
    'Water the garden in the morning. Mulch the beds to keep the soil moist and cool.',
    'Sow the beans after the last frost. Pick the beans young and they keep coming.',
    'Compost the leaves in autumn. Turn the compost heap every few weeks.',
  ],
  radio: [
    'The mesh radio hops each packet from node to node until it reaches the gateway.',
    'A LoRa node sends at low power; the airtime limit keeps the channel fair for all.',
    'Set the antenna high and clear. A good antenna beats more transmit power.',
    'The repeater on the hill relays messages between the two valleys every night.',
    'Check the battery of each node; a solar panel keeps the relay alive in winter.',
    'The duty cycle rule says a node may send only one percent of the time.',
  ],
  kitchen: [
    'Knead the bread dough for ten minutes, then let it rise in a warm place.',
    'Bake the loaf at a high heat until the crust is dark and it sounds hollow.',
    'Simmer the soup slowly; add the salt at the end and taste it first.',
    'Fry the onions in butter until they are soft and golden, then add the garlic.',
    'Whisk the eggs with milk and a pinch of salt before you pour them in the pan.',
    'Rest the meat after cooking so the juices stay inside when you slice it.',
  ],
};

export const HELD_OUT: string[] = [
  'Prune the tomatoes and water the roses in the morning.',
  'The node on the hill relays each packet to the gateway.',
  'Knead the dough, let it rise, then bake the bread until dark.',
  'Mulch the beans and compost the leaves in the garden.',
  'A good antenna keeps the mesh radio link alive at low power.',
  'Fry the garlic in butter and simmer the soup slowly.',
];

/** A topic's training text: its sentences a few times over, in rotated orders. */
export function corpus(topic: string, repeats = 4): string[] {
  const s = TOPICS[topic]!;
  const out: string[] = [];
  for (let r = 0; r < repeats; r++) out.push(s.map((_, i) => s[(i + r) % s.length]).join(' '));
  return out;
}
