/* Runs a fuzz target on files, without libFuzzer: the seed corpora and the
 * regression inputs become an ordinary TAP test of the plain and sanitized
 * builds. Each input runs in a child process with a time limit, so one crash
 * or hang is reported as one failing input and the rest still run.
 *   replay FILE|DIR...   (a directory: its files, sorted) */
#include <glib.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Seconds an input may take; every seed runs in milliseconds. */
#define TIME_LIMIT 20

static int n_tests, n_failed;

static void replay(const char *path) {
  gchar *data = NULL;
  gsize size = 0;
  GError *error = NULL;
  n_tests++;
  if (!g_file_get_contents(path, &data, &size, &error)) {
    printf("not ok %d - %s: %s\n", n_tests, path, error->message);
    g_error_free(error);
    n_failed++;
    return;
  }
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(TIME_LIMIT);
    /* An exact-size copy, so ASan sees a read past the end. */
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    LLVMFuzzerTestOneInput(copy, size);
    free(copy);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    printf("ok %d - %s (%" G_GSIZE_FORMAT " bytes)\n", n_tests, path, size);
  } else {
    n_failed++;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
      printf("not ok %d - %s: still running after %d s\n", n_tests, path, TIME_LIMIT);
    else if (WIFSIGNALED(status))
      printf("not ok %d - %s: killed by signal %d (%s)\n", n_tests, path,
             WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
      printf("not ok %d - %s: exit status %d\n", n_tests, path, WEXITSTATUS(status));
  }
  g_free(data);
}

static int by_name(gconstpointer a, gconstpointer b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!g_file_test(argv[i], G_FILE_TEST_IS_DIR)) {
      replay(argv[i]);
      continue;
    }
    GDir *dir = g_dir_open(argv[i], 0, NULL);
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const gchar *name;
    while (dir && (name = g_dir_read_name(dir)))
      if (name[0] != '.' && strcmp(name, "README.md") != 0)
        g_ptr_array_add(names, g_build_filename(argv[i], name, NULL));
    if (dir)
      g_dir_close(dir);
    g_ptr_array_sort(names, by_name);
    for (guint k = 0; k < names->len; k++)
      replay(names->pdata[k]);
    g_ptr_array_unref(names);
  }
  printf("1..%d\n", n_tests);
  return n_failed ? 1 : 0;
}
