/* Sub-command entry points: argv[0] is the command name. Return the exit code. */
#ifndef ZC_PROGRAMS_CMDS_H
#define ZC_PROGRAMS_CMDS_H
int cmd_run(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_serve(int argc, char **argv);
#endif
