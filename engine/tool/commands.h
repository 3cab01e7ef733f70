/* commands.h - the subcommands of reelfarm-engine, one line each.
 *
 * To add `reelfarm-engine foo`: add one line RF_CMD(foo, "what it does, one line") below
 * and write engine/tool/cmd_foo.c defining `int rf_cmd_foo(int argc, char **argv)`
 * (argv[0] is "foo"; return a process exit status: 0 ok, 1 failure, 2 usage error;
 * print its own --help). main.c expands this list into declarations and the table.
 * No include guard on purpose: the file is included twice with different RF_CMD.
 */
RF_CMD(info, "show the compute backend, threads and BLAS this build uses")
