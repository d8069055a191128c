/**
 * What llama2.c prints for stories260K at temperature 0 from an empty prompt (BOS only, 256
 * steps), as published in karpathy/llama2.c `doc/stories260K.md`:
 *   ./run stories260K/stories260K.bin -z stories260K/tok512.bin -t 0.0
 * The shared models README records that run.c reproduces it character for character, and
 * the float64 reference in this folder does too (llama2c-forward.test.ts).
 */
export const STORIES260K_GREEDY_STEPS = 256;

export const STORIES260K_GREEDY_TEXT =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\n' +
  'Lily\'s mom said, "Lily, let\'s go to the park." Lily was sad and didn\'t know what to do. She said, "I want to play with your ball, but I can\'t find it."\n' +
  'Lily was sad and didn\'t know what to do. She said, "I\'m sorry, Lily. I didn\'t know what to do."\n' +
  'Lily didn\'t want to help her mom, so she said, "I\'m sorry, mom. I didn\'t know what to do." Her mom said, "Don\'t worry, Lily. We can help you.';
