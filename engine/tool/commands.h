/* commands.h - the subcommands of reelfarm-engine, one line each.
 *
 * To add `reelfarm-engine foo`: add one line RF_CMD(foo, "what it does, one line") below
 * and write engine/tool/cmd_foo.c defining `int rf_cmd_foo(int argc, char **argv)`
 * (argv[0] is "foo"; return a process exit status: 0 ok, 1 failure, 2 usage error;
 * print its own --help). main.c expands this list into declarations and the table.
 * No include guard on purpose: the file is included twice with different RF_CMD.
 */
#ifndef RF_CMD /* only for tools that read this file alone (cppcheck) */
#define RF_CMD(name, summary)
#endif
RF_CMD(info, "show the compute backend, threads and BLAS this build uses")
RF_CMD(tokenize, "print a prompt's token ids (umT5 SentencePiece, </s> included)")
RF_CMD(t5, "run the umT5 text encoder on ids or a prompt, write the context tensor")
RF_CMD(dit, "run one forward of the Wan diffusion transformer (safetensors in, v out)")
RF_CMD(sample, "run a whole sampler schedule with the DiT: noise (or --init) to the final latent")
RF_CMD(vae_decode,
       "decode latents (safetensors z) to video frames, whole or a segment with warm-up")
RF_CMD(vae_encode, "encode video frames (safetensors video) to normalized latents")
RF_CMD(vae_warmup, "measure the segment warm-up a VAE needs and write vae_warmup.json")
RF_CMD(render, "render a prompt to a video file on this machine (tokenizer, T5, DiT, VAE)")
