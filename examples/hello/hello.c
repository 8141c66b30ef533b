/* A static greeting that reports who it runs as. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    printf("hello from executor's static base\n");
    printf("uid=%u gid=%u\n", (unsigned)getuid(), (unsigned)getgid());
    return 0;
}
